/* The bundle entry of containerd-shim-shoal-v2's JavaScript side (build/shim.js): run main. */
import { run } from './main';

run();
