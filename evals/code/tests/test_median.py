"""Unit tests of median: run by check.py against solution.py in the workspace."""
import unittest

from solution import median


class TestMedian(unittest.TestCase):
    def test_0(self):
        self.assertTrue(median([3, 1, 2]) == 2, 'median([3, 1, 2]) == 2')

    def test_1(self):
        self.assertTrue(median([4, 1, 3, 2]) == 2.5, 'median([4, 1, 3, 2]) == 2.5')

    def test_2(self):
        self.assertTrue(median([5]) == 5, 'median([5]) == 5')


if __name__ == "__main__":
    unittest.main()
