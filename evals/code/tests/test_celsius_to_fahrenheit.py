"""Unit tests of celsius_to_fahrenheit: run by check.py against solution.py in the workspace."""
import unittest

from solution import celsius_to_fahrenheit


class TestCelsiusToFahrenheit(unittest.TestCase):
    def test_0(self):
        self.assertTrue(celsius_to_fahrenheit(0) == 32, 'celsius_to_fahrenheit(0) == 32')

    def test_1(self):
        self.assertTrue(celsius_to_fahrenheit(100) == 212, 'celsius_to_fahrenheit(100) == 212')

    def test_2(self):
        self.assertTrue(celsius_to_fahrenheit(-40) == -40, 'celsius_to_fahrenheit(-40) == -40')


if __name__ == "__main__":
    unittest.main()
