"""Unit tests of reverse_string: run by check.py against solution.py in the workspace."""
import unittest

from solution import reverse_string


class TestReverseString(unittest.TestCase):
    def test_0(self):
        self.assertTrue(reverse_string('abc') == 'cba', "reverse_string('abc') == 'cba'")

    def test_1(self):
        self.assertTrue(reverse_string('') == '', "reverse_string('') == ''")

    def test_2(self):
        self.assertTrue(reverse_string('ab c') == 'c ba', "reverse_string('ab c') == 'c ba'")


if __name__ == "__main__":
    unittest.main()
