"""genlab.data exports what the spec names, and the error classes form one family."""

import genlab.data as data


def test_spec_names_are_exported():
    for name in ["Vocab", "CharTextDataModule", "DatesDataModule", "PairBatch", "ParallelTextDataModule",
                 "DigitsDataModule", "RingDataModule", "DataError", "DataFormatError", "DataUnavailableError"]:
        assert name in data.__all__ and hasattr(data, name), name


def test_error_hierarchy():
    assert issubclass(data.DataUnavailableError, data.DataError)
    assert issubclass(data.DataFormatError, data.DataError)
    assert issubclass(data.DataError, Exception)
    assert not issubclass(data.DataFormatError, data.DataUnavailableError)


def test_errors_pickle_and_keep_their_message():
    import pickle

    for cls in (data.DataUnavailableError, data.DataFormatError):
        err = pickle.loads(pickle.dumps(cls("file x missing; pass download=True")))
        assert type(err) is cls and str(err) == "file x missing; pass download=True"
