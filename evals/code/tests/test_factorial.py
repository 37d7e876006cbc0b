"""Unit tests of factorial: run by check.py against solution.py in the workspace."""
import unittest

from solution import factorial


class TestFactorial(unittest.TestCase):
    def test_0(self):
        self.assertTrue(factorial(0) == 1, 'factorial(0) == 1')

    def test_1(self):
        self.assertTrue(factorial(1) == 1, 'factorial(1) == 1')

    def test_2(self):
        self.assertTrue(factorial(5) == 120, 'factorial(5) == 120')

    def test_3(self):
        self.assertTrue(factorial(10) == 3628800, 'factorial(10) == 3628800')


if __name__ == "__main__":
    unittest.main()
