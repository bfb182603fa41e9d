"""Studies: sets of training runs whose results are tabulated and plotted together (see experiments/)."""
