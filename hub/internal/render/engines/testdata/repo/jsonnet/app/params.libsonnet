{ factor: 2 }
