# Benchmarks that run inside the guest (make bench collects their lines).
