# Corpus locations. The mini corpus ships inside the recipe.
MINI_GCFT=local/corpus
