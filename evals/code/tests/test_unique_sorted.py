"""Unit tests of unique_sorted: run by check.py against solution.py in the workspace."""
import unittest

from solution import unique_sorted


class TestUniqueSorted(unittest.TestCase):
    def test_0(self):
        self.assertTrue(unique_sorted([3, 1, 3, 2]) == [1, 2, 3], 'unique_sorted([3, 1, 3, 2]) == [1, 2, 3]')

    def test_1(self):
        self.assertTrue(unique_sorted([]) == [], 'unique_sorted([]) == []')


if __name__ == "__main__":
    unittest.main()
