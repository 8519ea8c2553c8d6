"""A signature-faithful stand-in for Huawei's npu_bridge (see ../shared/NPU_BRIDGE_API.md).

Test-only. Every class and function takes exactly the documented arguments (the "core"
NPURunConfig keywords, which every CANN release accepts) and runs on stock TF 1.15 on the
CPU, so the project's NPU path can be built and trained here. It has one rank; the device
loop is imitated by showing training hooks one Session.run per iterations_per_loop steps.
"""
