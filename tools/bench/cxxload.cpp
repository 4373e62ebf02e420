// SPDX-License-Identifier: MIT
// cxxload.cpp - the C++ workload of the benchmark: std::map, std::string and
// std::vector churned hard. Prints a checksum.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? std::atol(argv[1]) : 40;
	unsigned long sum = 0;
	for (long r = 0; r < rounds; r++) {
		std::map<std::string, std::vector<int>> m;
		for (int i = 0; i < 20000; i++) {
			std::string key = "key-" + std::to_string(i * 7919 % 20000) + "-round";
			std::vector<int> &v = m[key];
			for (int j = 0; j < i % 16; j++)
				v.push_back(j);
		}
		for (auto &kv : m)
			sum += kv.first.size() + kv.second.size();
	}
	std::printf("cxxload %lu\n", sum);
	return 0;
}
