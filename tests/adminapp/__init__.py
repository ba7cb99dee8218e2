"""A test app for servers: the job admin with one paced job action more."""
