"""Boards: profiles, transports, deploy, images, virtual and emulated boards, running
capsules on a board."""
