import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # the tests are small: one thread avoids oversubscribing shared CI cores
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)
