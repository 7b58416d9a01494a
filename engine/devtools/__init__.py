"""Tools for developing against optinflow without Meta: the Cloud API simulator and a
played customer. Nothing in the product imports them except the composition root and
the command line."""
