"""Unit tests of max_of_list: run by check.py against solution.py in the workspace."""
import unittest

from solution import max_of_list


class TestMaxOfList(unittest.TestCase):
    def test_0(self):
        self.assertTrue(max_of_list([3, 9, 2]) == 9, 'max_of_list([3, 9, 2]) == 9')

    def test_1(self):
        self.assertTrue(max_of_list([-5, -2, -9]) == -2, 'max_of_list([-5, -2, -9]) == -2')

    def test_2(self):
        self.assertTrue(max_of_list([7]) == 7, 'max_of_list([7]) == 7')


if __name__ == "__main__":
    unittest.main()
