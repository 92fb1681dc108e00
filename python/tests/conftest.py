import os
import tempfile

# wgpu's Vulkan loader wants a runtime directory; a headless CI runner may have none.
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp())
