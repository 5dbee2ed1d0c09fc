"""`python -m worker`: the production job runner (rq, with its scheduler, on Redis)."""
