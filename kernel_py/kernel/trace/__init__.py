# Tracers built on uprobes (Linux's kernel/trace/ holds trace_uprobe.c; memleak follows bcc's tool).
