# Events in programs: uprobes (Linux's kernel/events/).
