"""Unit tests of fibonacci: run by check.py against solution.py in the workspace."""
import unittest

from solution import fibonacci


class TestFibonacci(unittest.TestCase):
    def test_0(self):
        self.assertTrue(fibonacci(0) == 0, 'fibonacci(0) == 0')

    def test_1(self):
        self.assertTrue(fibonacci(1) == 1, 'fibonacci(1) == 1')

    def test_2(self):
        self.assertTrue(fibonacci(2) == 1, 'fibonacci(2) == 1')

    def test_3(self):
        self.assertTrue(fibonacci(10) == 55, 'fibonacci(10) == 55')


if __name__ == "__main__":
    unittest.main()
