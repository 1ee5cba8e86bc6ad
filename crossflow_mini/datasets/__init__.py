"""The data sets: ShapesWorld (made here), Fashion-MNIST (real photos of clothing), photo patches, 2-D toys."""

from .fashion import (CLASS_NAMES, DatasetNotFoundError, FashionMNISTDataset, FashionSplit, find_fashion_dir,
                      load_fashion)
from .photos import photo_patches
from .shapes import ShapesWorldDataset, ShapesWorldSplit, generate_split, load_shapes, render
from .toy2d import paired_blobs_to_moons, sample_2d

__all__ = ["CLASS_NAMES", "DatasetNotFoundError", "FashionMNISTDataset", "FashionSplit", "find_fashion_dir",
           "load_fashion", "photo_patches", "ShapesWorldDataset", "ShapesWorldSplit", "generate_split",
           "load_shapes", "render", "paired_blobs_to_moons", "sample_2d"]
