"""Unit tests of is_even: run by check.py against solution.py in the workspace."""
import unittest

from solution import is_even


class TestIsEven(unittest.TestCase):
    def test_0(self):
        self.assertTrue(is_even(4) is True, 'is_even(4) is True')

    def test_1(self):
        self.assertTrue(is_even(7) is False, 'is_even(7) is False')

    def test_2(self):
        self.assertTrue(is_even(0) is True, 'is_even(0) is True')

    def test_3(self):
        self.assertTrue(is_even(-3) is False, 'is_even(-3) is False')


if __name__ == "__main__":
    unittest.main()
