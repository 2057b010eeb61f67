"""Authentication: tokens in and out."""
