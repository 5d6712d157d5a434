"""The ESPnet plugin: GCFTASRModel, GCFTTask and GCFTSpeech2Text."""
