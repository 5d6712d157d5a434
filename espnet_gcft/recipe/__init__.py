"""Recipe helpers behind the stage script's CLIs: data formatting, trn files, results."""
