"""Unit tests of flatten: run by check.py against solution.py in the workspace."""
import unittest

from solution import flatten


class TestFlatten(unittest.TestCase):
    def test_0(self):
        self.assertTrue(flatten([[1, 2], [3], []]) == [1, 2, 3], 'flatten([[1, 2], [3], []]) == [1, 2, 3]')

    def test_1(self):
        self.assertTrue(flatten([]) == [], 'flatten([]) == []')


if __name__ == "__main__":
    unittest.main()
