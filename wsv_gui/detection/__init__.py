"""The Detection tab: detectors trained from the project's boxes, live detections, evaluation."""
