#version 450
// empty.comp - the launch floor: one workgroup of one thread that does nothing, dispatched
// and timed the way every case is (backend_vulkan.c measure_launch_floor).
layout(local_size_x = 1) in;

void main() {}
