"""`catalog fsck`: checking that the rows and the content store tell the same story."""
