"""Driver for the common Chinese body-camera protocols (JieLi DV16, Ambarella 4255:0001)."""
