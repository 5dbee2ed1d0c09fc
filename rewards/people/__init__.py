"""People and programs: the referral programs, their customers and the customers' referral
codes and links, logins and passwords, and the API keys of the business's servers."""
