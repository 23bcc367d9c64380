"""The model: loading the customer data, training, the segmentation service and its plots."""
