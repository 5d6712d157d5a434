"""The offline side of GCFT (no ESPnet imports): history, prompts, generation, embedding."""
