"""Hardware specs: DeviceSpec and loading/validating spec files."""

from perfmodel.hardware.load import device_from_dict, device_to_dict, list_devices, load_device
from perfmodel.hardware.spec import DeviceSpec, Efficiency, MemoryLevel

__all__ = ["DeviceSpec", "Efficiency", "MemoryLevel", "device_from_dict", "device_to_dict",
           "list_devices", "load_device"]
