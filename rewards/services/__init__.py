"""Every transaction that changes state lives here; views and jobs call these functions."""
