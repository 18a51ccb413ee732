"""Object detection from the project's boxes: torchvision detectors and the classic HOG + linear SVM pipeline,
their training as generators of plain-data records, post-processing the GUI re-applies live, and COCO/VOC-style
evaluation."""
