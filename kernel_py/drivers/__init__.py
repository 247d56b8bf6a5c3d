# Device drivers: the ATA disk controller.
