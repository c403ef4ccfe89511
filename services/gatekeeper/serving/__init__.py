"""The gatekeeper's serving adapter: everything that touches Triton and its model repository.

* ``repository`` — the files of the Triton model repository (templates, backbone, heads, serving.json);
* ``control`` — ``ServingControl``: the order of every change (write files, load, switch, unload),
  the backbone build, the serving check after a Triton restart, and the gatekeeper's state lock.

Nothing outside ``services/gatekeeper`` writes the repository; the rest of the gatekeeper reaches
Triton only through this package and the shared client ``emberwatch.common.triton_client`` (one
Triton HTTP client per thread: load, unload, ready, infer), which the console uses too.
"""
