"""The notifications inbox (live on ``user:<id>``) and transactional e-mail (welcome)."""
