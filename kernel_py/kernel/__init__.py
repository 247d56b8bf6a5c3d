# The kernel object and processes (Linux's kernel/).
