"""Model builders: CNNs, RNN language models and transformers from configs."""
