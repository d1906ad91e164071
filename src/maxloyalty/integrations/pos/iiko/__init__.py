"""iiko: the iikoCloud API client and the iikoTransport webhook receiver."""
