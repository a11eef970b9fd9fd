"""connections: invitations, two-way connections, their visibility, degrees and mutual connections."""
