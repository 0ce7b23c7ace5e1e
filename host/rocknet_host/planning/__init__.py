"""Planning on the host: everything fitted on the whole training set before boards run.

- `features`: the MiniRocket feature plan (quantization, dilations, biases, the split of its
  (dilation, kernel) combinations)
- `head`: each node's ``head`` section (mode, optimizer, schedule, fixed-point scales)
- `capacity`: the split over a mixed fleet by heap budget and clock
- `board`: what a board needs to train on its own (head, schedule and run sections)
"""
