"""Unit tests of fizzbuzz: run by check.py against solution.py in the workspace."""
import unittest

from solution import fizzbuzz


class TestFizzbuzz(unittest.TestCase):
    def test_0(self):
        self.assertTrue(fizzbuzz(3) == 'Fizz', "fizzbuzz(3) == 'Fizz'")

    def test_1(self):
        self.assertTrue(fizzbuzz(10) == 'Buzz', "fizzbuzz(10) == 'Buzz'")

    def test_2(self):
        self.assertTrue(fizzbuzz(15) == 'FizzBuzz', "fizzbuzz(15) == 'FizzBuzz'")

    def test_3(self):
        self.assertTrue(fizzbuzz(7) == '7', "fizzbuzz(7) == '7'")


if __name__ == "__main__":
    unittest.main()
