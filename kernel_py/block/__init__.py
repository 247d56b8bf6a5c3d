# Block devices: the ATA PIO driver and the block-device layer.
