# Demonstrations on the console: the CR3 demo and a user-space malloc in miniature.
