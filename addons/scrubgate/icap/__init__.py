"""ICAP service mode (`scrubgate icap`): the same gateway, called by an existing proxy."""
