"""Turn files, bytes and strings into the tensors the towers read; no torchvision or torchaudio."""
