//! voqa-agent library: packet capture, decoding, stream tracking and quality measurement.
