"""The MicroPython runner: real MicroPython 1.29 + ulab, arrays in and out, device errors."""

import numpy as np
import pytest
from rocknet_host.runtimes.micropython import DeviceError


def test_is_real_micropython_with_ulab(mpy):
    mpy.exec("import sys\nfrom ulab import numpy as np\nimport ulab")
    assert mpy.eval("sys.implementation.name") == "micropython"
    assert mpy.eval("sys.implementation.version[:2]") == [1, 29]
    assert mpy.eval("ulab.__version__").startswith("6.")
    assert mpy.eval("__import__('rocknet.xp').xp.ULAB") is True


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.float64])
def test_arrays_round_trip_with_dtype(device, dtype):
    a = (np.arange(-20, 20) * 3).astype(dtype)
    back = device.call("result = a", a=a)
    assert np.asarray(back).dtype == np.dtype(dtype)
    assert np.array_equal(np.asarray(back), a)


def test_device_exception_carries_device_traceback(mpy):
    with pytest.raises(DeviceError) as info:
        mpy.exec("def f():\n    raise ValueError('bad thing')\nf()")
    assert "ValueError: bad thing" in str(info.value)
    assert "in f" in info.value.device_traceback


def test_mem_alloc_measures_held_memory(mpy):
    before = mpy.mem_alloc()
    mpy.exec("from ulab import numpy as np\nbig = np.zeros(20000, dtype=np.int16)")
    held = mpy.mem_alloc() - before
    assert 40000 <= held < 60000
    mpy.exec("del big")
    assert mpy.mem_alloc() - before < 10000
