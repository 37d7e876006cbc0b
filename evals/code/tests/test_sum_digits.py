"""Unit tests of sum_digits: run by check.py against solution.py in the workspace."""
import unittest

from solution import sum_digits


class TestSumDigits(unittest.TestCase):
    def test_0(self):
        self.assertTrue(sum_digits(123) == 6, 'sum_digits(123) == 6')

    def test_1(self):
        self.assertTrue(sum_digits(0) == 0, 'sum_digits(0) == 0')

    def test_2(self):
        self.assertTrue(sum_digits(9999) == 36, 'sum_digits(9999) == 36')


if __name__ == "__main__":
    unittest.main()
