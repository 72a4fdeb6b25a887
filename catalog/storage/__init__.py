"""Files: the content store of blobs, layer tars streamed into it, bounded decompression,
and image archives (reading them confined, writing them). No database.
"""
